//! ListApiKeys and RevokeApiKey.

use tonic::Status;
use veil_core::error::ServiceError;
use veil_core::types::Role;
use veil_proto::common::v1::PageResponse;
use veil_proto::events::v1::GatewayApiKeyRevoked;
use veil_proto::events::v1::event::Payload;
use veil_proto::gateway::v1::{
    ListApiKeysRequest, ListApiKeysResponse, RevokeApiKeyRequest, RevokeApiKeyResponse,
};

use super::{AdminApi, emit_change, rows, scope};
use crate::apikeys::Caller;
use crate::store;

fn bad_token() -> ServiceError {
    ServiceError::invalid("page.page_token", "is not a token of this list")
}

/// `<unix nanoseconds>:<key id>` → the keyset cursor.
fn parse_cursor(cursor: &str) -> Result<(time::OffsetDateTime, String), ServiceError> {
    let (nanos, key_id) = cursor.split_once(':').ok_or_else(bad_token)?;
    let nanos: i128 = nanos.parse().map_err(|_| bad_token())?;
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|_| bad_token())?;
    Ok((at, key_id.to_string()))
}

impl AdminApi {
    pub(super) async fn list_api_keys_as(
        &self,
        caller: &Caller,
        request: ListApiKeysRequest,
    ) -> Result<ListApiKeysResponse, Status> {
        caller.require_any(&[Role::Admin])?;
        let tenant = scope::target_tenant(caller, &request.tenant_id)?;
        let (size, cursor) = scope::page(request.page.as_ref())?;
        let after = cursor.as_deref().map(parse_cursor).transpose()?;
        if !store::tenant_exists(&self.pool, tenant.as_uuid())
            .await
            .map_err(ServiceError::from)?
        {
            return Err(ServiceError::NotFound(format!("tenant {tenant}")).into());
        }
        let mut found = rows::keys(
            &self.pool,
            tenant.as_uuid(),
            after,
            request.include_revoked,
            size + 1,
        )
        .await
        .map_err(ServiceError::from)?;
        let more = found.len() as i64 > size;
        found.truncate(usize::try_from(size).unwrap_or(usize::MAX));
        let next_page_token = match found.last() {
            Some(last) if more => scope::token(&format!(
                "{}:{}",
                last.created_at.unix_timestamp_nanos(),
                last.key_id
            )),
            _ => String::new(),
        };
        Ok(ListApiKeysResponse {
            api_keys: found.into_iter().map(Into::into).collect(),
            page: Some(PageResponse { next_page_token }),
        })
    }

    pub(super) async fn revoke_api_key_as(
        &self,
        caller: &Caller,
        request: RevokeApiKeyRequest,
    ) -> Result<RevokeApiKeyResponse, Status> {
        caller.require_any(&[Role::Admin])?;
        let tenant = scope::target_tenant(caller, &request.tenant_id)?;
        let key_id = request
            .key_id
            .strip_prefix("veil_")
            .unwrap_or(&request.key_id);
        if key_id.is_empty() || key_id.len() > 64 {
            return Err(
                ServiceError::invalid("key_id", "must be a key id such as k3f9a2...").into(),
            );
        }
        if request.reason.chars().count() > 500 {
            return Err(ServiceError::invalid("reason", "must be at most 500 characters").into());
        }
        let mut tx = veil_core::db::begin(&self.pool)
            .await
            .map_err(ServiceError::from)?;
        let (meta, revoked_now) = rows::revoke(&mut tx, tenant.as_uuid(), key_id, &request.reason)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::NotFound(format!("api key {key_id}")))?;
        // Revoking twice is a no-op: one event, the first reason stays.
        if revoked_now {
            emit_change(
                &mut tx,
                &self.events,
                caller,
                tenant,
                Payload::GatewayApiKeyRevoked(GatewayApiKeyRevoked {
                    key_id: meta.key_id.clone(),
                    key_prefix: format!("veil_{}", meta.key_id),
                    reason: request.reason.clone(),
                }),
            )
            .await?;
        }
        tx.commit().await.map_err(ServiceError::from)?;
        // This replica refuses the key at once; others drop it on the event (or the TTL).
        self.auth.forget_key(&meta.key_id);
        if revoked_now {
            self.relay.notify();
        }
        Ok(RevokeApiKeyResponse {
            api_key: Some(meta.into()),
        })
    }
}
