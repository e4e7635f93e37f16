//! Deletion certificates: a canonical JSON document listing what each service erased and
//! which recipients were told, signed as a compact JWS (EdDSA), stored, and anchored in
//! the audit log by the `retention.certificate_issued` event carrying its sha256.

mod anchor;
pub mod document;
pub mod keys;
mod store;
pub mod verify;

use std::collections::HashMap;

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;
use veil_core::convert::timestamp;
use veil_core::emit::EventContext;
use veil_core::error::ServiceError;
use veil_core::types::{SubjectRef, TenantId};
use veil_proto::common::v1::{ErasureOutcome, VeilService};
use veil_proto::events::v1::RetentionCertificateIssued;
use veil_proto::events::v1::event::Payload;
use veil_proto::retention::v1::DeletionCertificate;

pub use anchor::get_deletion_certificate;
use document::{
    CertificateDocument, DOCUMENT_TYPE, DOCUMENT_VERSION, ISSUER, RecipientNotice, ServiceErasure,
    rfc3339, sha256_hex,
};
pub use keys::CertificateKeys;
use store::CertificateRow;

use crate::state::Retention;

/// What a saga hands over to be certified.
#[derive(Debug, Clone)]
pub struct CertificateInput {
    pub tenant: TenantId,
    pub request_id: Uuid,
    pub subject: SubjectRef,
    pub services: Vec<ServiceErasure>,
    pub recipients: Vec<RecipientNotice>,
}

/// Signs and stores the certificate and writes the anchoring event, all in `conn`'s
/// transaction. A request that already has a certificate keeps it (its id is returned).
pub async fn issue(
    conn: &mut PgConnection,
    state: &Retention,
    context: &EventContext,
    mut input: CertificateInput,
) -> Result<Uuid, ServiceError> {
    if let Some(existing) =
        store::by_request(conn, input.tenant.as_uuid(), input.request_id).await?
    {
        return Ok(existing.certificate_id);
    }
    input.services.sort_by(|a, b| a.service.cmp(&b.service));
    input
        .recipients
        .sort_by(|a, b| a.recipient_id.cmp(&b.recipient_id));
    let certificate_id = Uuid::now_v7();
    let now = OffsetDateTime::now_utc();
    let issued_at = now
        .replace_nanosecond(now.nanosecond() / 1000 * 1000)
        .unwrap_or(now);
    let document = CertificateDocument {
        certificate_id: certificate_id.to_string(),
        issued_at: rfc3339(issued_at),
        issuer: ISSUER.into(),
        recipients: input.recipients,
        request_id: input.request_id.to_string(),
        services: input.services,
        subject_ref: input.subject.as_str().to_string(),
        tenant_id: input.tenant.to_string(),
        kind: DOCUMENT_TYPE.into(),
        version: DOCUMENT_VERSION,
    };
    let json = document.canonical_json().map_err(ServiceError::internal)?;
    let jws = state
        .certificates
        .sign(&document)
        .map_err(ServiceError::internal)?;
    let sha256 = sha256_hex(json.as_bytes());
    let payload = Payload::RetentionCertificateIssued(RetentionCertificateIssued {
        request_id: input.request_id.to_string(),
        certificate_id: certificate_id.to_string(),
        certificate_sha256: sha256.clone(),
    });
    // The event id is kept: GetDeletionCertificate finds the audit entry by it.
    let anchor_event_id = veil_core::emit::emit(&mut *conn, &state.events, context, payload)
        .await
        .map_err(ServiceError::internal)?;
    let row = CertificateRow {
        certificate_id,
        tenant_id: input.tenant.as_uuid(),
        request_id: input.request_id,
        subject_ref: document.subject_ref.clone(),
        issued_at,
        certificate_json: json,
        jws,
        key_id: state.certificates.kid().to_string(),
        public_key: state.certificates.public_key().to_bytes().to_vec(),
        sha256,
        anchor_event_id,
        audit_leaf_index: None,
    };
    store::insert(conn, &row).await?;
    Ok(certificate_id)
}

/// The stored certificate as the API presents it, not yet anchored.
fn to_proto(row: &CertificateRow) -> Result<DeletionCertificate, ServiceError> {
    let document: CertificateDocument =
        serde_json::from_str(&row.certificate_json).map_err(ServiceError::internal)?;
    let erasures = document
        .services
        .iter()
        .map(|s| ErasureOutcome {
            service: service_enum(&s.service) as i32,
            counts: s
                .counts
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect::<HashMap<_, _>>(),
            completed_at: time::OffsetDateTime::parse(
                &s.completed_at,
                &time::format_description::well_known::Rfc3339,
            )
            .ok()
            .map(timestamp),
        })
        .collect();
    Ok(DeletionCertificate {
        certificate_id: row.certificate_id.to_string(),
        request_id: row.request_id.to_string(),
        subject_ref: row.subject_ref.clone(),
        issued_at: Some(timestamp(row.issued_at)),
        erasures,
        certificate_json: row.certificate_json.clone(),
        jws: row.jws.clone(),
        key_id: row.key_id.clone(),
        public_key: row.public_key.clone(),
        ..Default::default()
    })
}

/// Lower-case service label used in saga rows and certificates.
pub fn service_label(service: VeilService) -> &'static str {
    match service {
        VeilService::Gateway => "gateway",
        VeilService::Vault => "vault",
        VeilService::Consent => "consent",
        VeilService::Retention => "retention",
        VeilService::Audit => "audit",
        VeilService::Unspecified => "unspecified",
    }
}

/// The service of a label written by [`service_label`].
pub fn service_enum(label: &str) -> VeilService {
    match label {
        "gateway" => VeilService::Gateway,
        "vault" => VeilService::Vault,
        "consent" => VeilService::Consent,
        "retention" => VeilService::Retention,
        "audit" => VeilService::Audit,
        _ => VeilService::Unspecified,
    }
}
