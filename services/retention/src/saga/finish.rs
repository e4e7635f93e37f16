//! Completing an erasure once every service answered: Art. 19 notifications to the
//! registered recipients, the deletion certificate, and the request's COMPLETED state,
//! all in one transaction.

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;
use veil_core::error::ServiceError;
use veil_core::types::TenantId;
use veil_proto::common::v1::{PageRequest, RequestState, RequestType};
use veil_proto::consent::v1::ListRecipientsRequest;
use veil_proto::events::v1::RetentionRecipientNotification;
use veil_proto::events::v1::event::Payload;

use super::steps;
use crate::certificate::document::{RecipientNotice, ServiceErasure, rfc3339};
use crate::certificate::{self, CertificateInput};
use crate::requests::store as requests;
use crate::state::Retention;

/// Most recipients read per page from consent.
const RECIPIENT_PAGE: i32 = 500;

/// Finishes the request's erasure if every step is done and it is still in progress;
/// true when it did.
pub async fn try_finish(
    conn: &mut PgConnection,
    state: &Retention,
    tenant: TenantId,
    request_id: Uuid,
) -> Result<bool, ServiceError> {
    let rows = steps::lock_all(conn, tenant.as_uuid(), request_id).await?;
    if rows.is_empty() || rows.iter().any(|step| !step.done) {
        return Ok(false);
    }
    let Some(row) = requests::load_for_update(conn, tenant, request_id).await? else {
        return Ok(false);
    };
    if row.state != RequestState::InProgress || row.request_type != RequestType::Erasure {
        return Ok(false);
    }
    let recipients = recipients(state, tenant).await?;
    let context = row.context(Some(requests::service_actor(tenant)));
    for recipient in &recipients {
        let payload = Payload::RetentionRecipientNotification(RetentionRecipientNotification {
            request_id: request_id.to_string(),
            request_type: RequestType::Erasure as i32,
            recipient_id: recipient.recipient_id.clone(),
            recipient_name: recipient.name.clone(),
        });
        state.emit(conn, &context, payload).await?;
    }
    let services = rows
        .into_iter()
        .map(|step| ServiceErasure {
            completed_at: rfc3339(step.completed_at.unwrap_or_else(OffsetDateTime::now_utc)),
            counts: step.counts.0,
            service: step.service,
        })
        .collect();
    let input = CertificateInput {
        tenant,
        request_id,
        subject: row.subject_ref.clone(),
        services,
        recipients,
    };
    let certificate_id = certificate::issue(conn, state, &context, input).await?;
    requests::set_certificate(conn, tenant, request_id, &certificate_id.to_string()).await?;
    requests::transition(conn, state, &row, RequestState::Completed, "erased", None).await?;
    Ok(true)
}

/// Every recipient registered in consent for the tenant: the ones personal data may
/// have been disclosed to, each told of the erasure.
async fn recipients(
    state: &Retention,
    tenant: TenantId,
) -> Result<Vec<RecipientNotice>, ServiceError> {
    let mut consent = state.peers.consent(tenant);
    let mut found = Vec::new();
    let mut page_token = String::new();
    loop {
        let response = consent
            .list_recipients(ListRecipientsRequest {
                page: Some(PageRequest {
                    page_size: RECIPIENT_PAGE,
                    page_token,
                }),
            })
            .await
            .map_err(|status| {
                ServiceError::Unavailable(format!(
                    "consent recipients unavailable ({:?})",
                    status.code()
                ))
            })?
            .into_inner();
        found.extend(response.recipients.into_iter().map(|r| RecipientNotice {
            name: r.name,
            recipient_id: r.key,
        }));
        page_token = response.page.map(|p| p.next_page_token).unwrap_or_default();
        if page_token.is_empty() {
            return Ok(found);
        }
    }
}
