//! CreateTenant and CreateApiKey: the calls that mint credentials (a key's secret is
//! returned once and stored only as a hash).

use tonic::Status;
use veil_core::convert::{role_from_proto, role_to_proto, timestamp};
use veil_core::error::ServiceError;
use veil_core::events::EventsConfig;
use veil_core::types::{Role, TenantId};
use veil_proto::events::v1::event::Payload;
use veil_proto::events::v1::{GatewayApiKeyCreated, GatewayTenantCreated};
use veil_proto::gateway::v1::{
    ApiKey, CreateApiKeyRequest, CreateApiKeyResponse, CreateTenantRequest, CreateTenantResponse,
    CreatedApiKey, Tenant, TenantState,
};

use super::{AdminApi, actor, emit_change, scope, validate_name, validate_slug};
use crate::apikeys::{self, Caller};
use crate::store;

impl AdminApi {
    pub(super) async fn create_tenant_as(
        &self,
        caller: &Caller,
        request: CreateTenantRequest,
    ) -> Result<CreateTenantResponse, Status> {
        caller.require_any(&[Role::PlatformAdmin])?;
        validate_name("name", &request.name)?;
        validate_slug(&request.slug)?;
        let locale = if request.default_locale.is_empty() {
            "en".to_string()
        } else {
            request.default_locale.clone()
        };
        let mut tx = veil_core::db::begin(&self.pool)
            .await
            .map_err(ServiceError::from)?;
        let row = store::insert_tenant(
            &mut *tx,
            &request.name,
            &request.slug,
            request.default_jurisdiction,
            &locale,
        )
        .await
        .map_err(ServiceError::from)?
        .ok_or_else(|| ServiceError::AlreadyExists(format!("tenant slug {}", request.slug)))?;
        let tenant = TenantId::from_uuid(row.tenant_id);
        emit_change(
            &mut tx,
            &self.events,
            caller,
            tenant,
            Payload::GatewayTenantCreated(GatewayTenantCreated {
                tenant_id: tenant.to_string(),
                slug: row.slug.clone(),
                default_jurisdiction: row.default_jurisdiction,
            }),
        )
        .await?;
        let admin_key = if request.create_admin_key {
            Some(
                create_key(
                    &mut tx,
                    &self.events,
                    caller,
                    tenant,
                    "admin",
                    &[Role::Admin],
                    None,
                )
                .await?,
            )
        } else {
            None
        };
        tx.commit().await.map_err(ServiceError::from)?;
        self.relay.notify();
        Ok(CreateTenantResponse {
            tenant: Some(Tenant {
                tenant_id: tenant.to_string(),
                name: row.name,
                slug: row.slug,
                state: TenantState::Active as i32,
                default_jurisdiction: row.default_jurisdiction,
                default_locale: row.default_locale,
                created_at: Some(timestamp(row.created_at)),
                updated_at: Some(timestamp(row.created_at)),
            }),
            admin_key,
        })
    }

    pub(super) async fn create_api_key_as(
        &self,
        caller: &Caller,
        request: CreateApiKeyRequest,
    ) -> Result<CreateApiKeyResponse, Status> {
        caller.require_any(&[Role::Admin])?;
        let tenant = if request.tenant_id.is_empty() {
            caller.tenant()?
        } else {
            scope::target_tenant(caller, &request.tenant_id)?
        };
        validate_name("name", &request.name)?;
        if request.roles.is_empty() {
            return Err(ServiceError::invalid("roles", "at least one role is required").into());
        }
        let mut roles = Vec::with_capacity(request.roles.len());
        for (i, value) in request.roles.iter().enumerate() {
            match role_from_proto(*value) {
                Some(Role::PlatformAdmin | Role::Service) | None => {
                    return Err(ServiceError::invalid(
                        format!("roles[{i}]"),
                        "must be bot, agent, privacy_officer, auditor or admin",
                    )
                    .into());
                }
                // Stored once each: a key's roles are copied into every call it makes.
                Some(role) if roles.contains(&role) => {
                    return Err(
                        ServiceError::invalid(format!("roles[{i}]"), "is a duplicate").into(),
                    );
                }
                Some(role) => roles.push(role),
            }
        }
        let expires_at = match &request.expires_at {
            Some(ts) => {
                let at = veil_core::convert::from_timestamp(ts)
                    .filter(|at| *at > time::OffsetDateTime::now_utc())
                    .ok_or_else(|| ServiceError::invalid("expires_at", "must be in the future"))?;
                Some(at)
            }
            None => None,
        };
        let mut tx = veil_core::db::begin(&self.pool)
            .await
            .map_err(ServiceError::from)?;
        if !store::tenant_exists(&mut *tx, tenant.as_uuid())
            .await
            .map_err(ServiceError::from)?
        {
            return Err(ServiceError::NotFound(format!("tenant {tenant}")).into());
        }
        let created = create_key(
            &mut tx,
            &self.events,
            caller,
            tenant,
            &request.name,
            &roles,
            expires_at,
        )
        .await?;
        tx.commit().await.map_err(ServiceError::from)?;
        self.relay.notify();
        Ok(CreateApiKeyResponse {
            created: Some(created),
        })
    }
}

/// Stores a new key and its event in `tx`; the secret is returned once.
async fn create_key(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    events: &EventsConfig,
    caller: &Caller,
    tenant: TenantId,
    name: &str,
    roles: &[Role],
    expires_at: Option<time::OffsetDateTime>,
) -> Result<CreatedApiKey, ServiceError> {
    let key = apikeys::generate();
    let role_names: Vec<String> = roles.iter().map(|r| r.as_str().to_string()).collect();
    store::insert_key(
        &mut **tx,
        &key.key_id,
        tenant.as_uuid(),
        name,
        &key.secret_hash,
        &role_names,
        expires_at,
    )
    .await?;
    let proto_roles: Vec<i32> = roles.iter().map(|r| role_to_proto(*r) as i32).collect();
    let prefix = format!("veil_{}", key.key_id);
    emit_change(
        tx,
        events,
        caller,
        tenant,
        Payload::GatewayApiKeyCreated(GatewayApiKeyCreated {
            key_id: key.key_id.clone(),
            key_prefix: prefix.clone(),
            roles: proto_roles.clone(),
            expires_at: expires_at.map(timestamp),
        }),
    )
    .await?;
    Ok(CreatedApiKey {
        api_key: Some(ApiKey {
            key_id: key.key_id,
            tenant_id: tenant.to_string(),
            name: name.to_string(),
            prefix,
            roles: proto_roles,
            created_at: Some(veil_core::convert::now()),
            expires_at: expires_at.map(timestamp),
            created_by: Some(actor(caller)),
            ..Default::default()
        }),
        secret: key.token,
    })
}
