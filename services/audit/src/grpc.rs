//! gRPC edge of the audit service (skeleton: `GetEntry`).

use prost::Message;
use tonic::{Request, Response, Status};
use veil_core::auth::Principal;
use veil_core::convert::timestamp;
use veil_core::error::ServiceError;
use veil_core::types::Role;
use veil_proto::audit::v1::audit_service_server::AuditService;
use veil_proto::audit::v1::get_entry_request::Key;
use veil_proto::audit::v1::{AuditEntry, GetEntryRequest, GetEntryResponse};
use veil_proto::events::v1::Event;

use crate::store::{self, EntryKey, EntryRow};

/// Implementation of `veil.audit.v1.AuditService`.
pub struct AuditApi {
    pool: sqlx::PgPool,
}

impl AuditApi {
    pub fn new(pool: sqlx::PgPool) -> Self {
        Self { pool }
    }
}

fn to_proto(row: EntryRow) -> AuditEntry {
    let event = Event::decode(row.envelope.as_slice()).ok();
    AuditEntry {
        leaf_index: u64::try_from(row.idx).unwrap_or_default(),
        event_id: row.event_id.to_string(),
        event_type: row.event_type,
        tenant_id: row.tenant_id.map(|t| t.to_string()).unwrap_or_default(),
        subject_ref: row.subject_ref.unwrap_or_default(),
        actor: event.as_ref().and_then(|e| e.actor.clone()),
        source: event.as_ref().map(|e| e.source).unwrap_or_default(),
        occurred_at: Some(timestamp(row.occurred_at)),
        appended_at: Some(timestamp(row.appended_at)),
        leaf_data: row.envelope,
        leaf_hash: row.leaf_hash,
        event,
    }
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn get_entry(
        &self,
        request: Request<GetEntryRequest>,
    ) -> Result<Response<GetEntryResponse>, Status> {
        let principal = Principal::from_request(&request)?;
        principal.require_any(&[Role::Auditor, Role::PrivacyOfficer, Role::PlatformAdmin])?;
        // Platform administrators see every tenant; everyone else only their own.
        let tenant = if principal.has_role(Role::PlatformAdmin) {
            None
        } else {
            Some(principal.tenant()?.as_uuid())
        };
        let key = match request.into_inner().key {
            Some(Key::LeafIndex(idx)) => EntryKey::Index(
                i64::try_from(idx).map_err(|_| ServiceError::invalid("leaf_index", "too large"))?,
            ),
            Some(Key::EventId(id)) => EntryKey::EventId(
                id.parse()
                    .map_err(|_| ServiceError::invalid("event_id", "must be a UUID"))?,
            ),
            None => {
                return Err(
                    ServiceError::invalid("key", "leaf_index or event_id is required").into(),
                );
            }
        };
        let row = store::entry(&self.pool, key, tenant)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::NotFound("audit entry".into()))?;
        Ok(Response::new(GetEntryResponse {
            entry: Some(to_proto(row)),
        }))
    }
}
