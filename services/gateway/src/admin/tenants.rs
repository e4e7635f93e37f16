//! GetTenant and ListTenants.

use tonic::Status;
use uuid::Uuid;
use veil_core::error::ServiceError;
use veil_core::types::Role;
use veil_proto::common::v1::PageResponse;
use veil_proto::gateway::v1::{
    GetTenantRequest, GetTenantResponse, ListTenantsRequest, ListTenantsResponse,
};

use super::{AdminApi, rows, scope};
use crate::apikeys::Caller;

impl AdminApi {
    pub(super) async fn get_tenant_as(
        &self,
        caller: &Caller,
        request: GetTenantRequest,
    ) -> Result<GetTenantResponse, Status> {
        caller.require_any(&[Role::Admin])?;
        let tenant = scope::target_tenant(caller, &request.tenant_id)?;
        let row = rows::tenant(&self.pool, tenant.as_uuid())
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::NotFound(format!("tenant {tenant}")))?;
        Ok(GetTenantResponse {
            tenant: Some(row.into()),
        })
    }

    pub(super) async fn list_tenants_as(
        &self,
        caller: &Caller,
        request: ListTenantsRequest,
    ) -> Result<ListTenantsResponse, Status> {
        caller.require_any(&[Role::Admin])?;
        let (size, cursor) = scope::page(request.page.as_ref())?;
        let after = cursor
            .map(|c| c.parse::<Uuid>())
            .transpose()
            .map_err(|_| ServiceError::invalid("page.page_token", "is not a token of this list"))?;
        if request.slug_prefix.len() > 63 {
            return Err(
                ServiceError::invalid("slug_prefix", "must be at most 63 characters").into(),
            );
        }
        // A tenant administrator sees only its own tenant: a one-item list.
        if let Some(own) = caller.tenant {
            let tenants = match rows::tenant(&self.pool, own.as_uuid())
                .await
                .map_err(ServiceError::from)?
            {
                Some(row)
                    if after.is_none()
                        && row.slug.starts_with(&request.slug_prefix)
                        && (request.include_suspended || row.state != 2) =>
                {
                    vec![row.into()]
                }
                _ => Vec::new(),
            };
            return Ok(ListTenantsResponse {
                tenants,
                page: Some(PageResponse::default()),
            });
        }
        let mut found = rows::tenants(
            &self.pool,
            after,
            &request.slug_prefix,
            request.include_suspended,
            size + 1,
        )
        .await
        .map_err(ServiceError::from)?;
        let more = found.len() as i64 > size;
        found.truncate(usize::try_from(size).unwrap_or(usize::MAX));
        let next_page_token = match found.last() {
            Some(last) if more => scope::token(&last.tenant_id.to_string()),
            _ => String::new(),
        };
        Ok(ListTenantsResponse {
            tenants: found.into_iter().map(Into::into).collect(),
            page: Some(PageResponse { next_page_token }),
        })
    }
}
