//! `veil.gateway.v1.AdminService`: tenants, API keys and privacy policies. Every call
//! acts on the caller's own tenant unless a platform administrator names one.

mod keys;
mod policy;
mod rows;
mod scope;
mod tenants;

use std::sync::Arc;

use tonic::{Request, Response, Status};
use veil_core::app::Foundation;
use veil_core::convert::{role_from_proto, role_to_proto, timestamp};
use veil_core::emit::{EventContext, emit};
use veil_core::error::ServiceError;
use veil_core::events::{EventsConfig, RelayHandle};
use veil_core::types::{Role, TenantId};
use veil_proto::common::v1::{Actor, ActorKind};
use veil_proto::events::v1::event::Payload;
use veil_proto::events::v1::{AuthFailureReason, GatewayApiKeyCreated, GatewayTenantCreated};
use veil_proto::gateway::v1::admin_service_server::AdminService;
use veil_proto::gateway::v1::{
    ApiKey, CreateApiKeyRequest, CreateApiKeyResponse, CreateTenantRequest, CreateTenantResponse,
    CreatedApiKey, GetPrivacyPolicyRequest, GetPrivacyPolicyResponse, GetTenantRequest,
    GetTenantResponse, ListApiKeysRequest, ListApiKeysResponse, ListTenantsRequest,
    ListTenantsResponse, RevokeApiKeyRequest, RevokeApiKeyResponse, SetPrivacyPolicyRequest,
    SetPrivacyPolicyResponse, Tenant, TenantState,
};

use crate::apikeys::{self, Authenticator, Caller};
use crate::peer::Peer;
use crate::store;

/// Implementation of the admin API.
pub struct AdminApi {
    pool: sqlx::PgPool,
    events: EventsConfig,
    relay: RelayHandle,
    auth: Arc<Authenticator>,
}

/// Authenticates the caller of AdminService method `$method`, runs
/// `self.<handler>(&caller, message)` and records a refusal for lack of a role (for
/// audit's abuse rules, like the proxy does).
macro_rules! admin_call {
    ($self:ident, $request:ident, $method:literal, $handler:ident) => {{
        let method = concat!("/veil.gateway.v1.AdminService/", $method);
        let peer = Peer::of(&$request);
        let caller = $self
            .auth
            .authenticate_call($request.metadata(), peer, method)
            .await?;
        let result = $self.$handler(&caller, $request.into_inner()).await;
        if let Err(status) = &result
            && status.code() == tonic::Code::PermissionDenied
        {
            $self
                .auth
                .record_denied(&caller, peer, method, AuthFailureReason::PermissionDenied)
                .await;
        }
        result.map(Response::new)
    }};
}

impl AdminApi {
    /// The admin API over the foundation's database and events.
    pub fn new(foundation: &Foundation, auth: Arc<Authenticator>) -> Self {
        Self {
            pool: foundation.pool.clone(),
            events: foundation.events.clone(),
            relay: foundation.relay.clone(),
            auth,
        }
    }
}

/// The audit actor for a gateway caller.
pub fn actor(caller: &Caller) -> Actor {
    let kind = if caller.key_id.starts_with(crate::jwt::PRINCIPAL_PREFIX) {
        ActorKind::User
    } else {
        ActorKind::ApiKey
    };
    Actor {
        kind: kind as i32,
        principal_id: caller.key_id.clone(),
        roles: caller
            .roles
            .iter()
            .map(|r| role_to_proto(*r) as i32)
            .collect(),
        tenant_id: caller.tenant.map(|t| t.to_string()).unwrap_or_default(),
    }
}

fn validate_slug(slug: &str) -> Result<(), ServiceError> {
    let ok = (3..=63).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            "slug",
            "must be 3 to 63 characters of [a-z0-9-]",
        ))
    }
}

fn validate_name(field: &str, name: &str) -> Result<(), ServiceError> {
    let length = name.chars().count();
    if name.trim().is_empty() || length > 200 {
        return Err(ServiceError::invalid(field, "must be 1 to 200 characters"));
    }
    Ok(())
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn get_tenant(
        &self,
        request: Request<GetTenantRequest>,
    ) -> Result<Response<GetTenantResponse>, Status> {
        admin_call!(self, request, "GetTenant", get_tenant_as)
    }

    async fn list_tenants(
        &self,
        request: Request<ListTenantsRequest>,
    ) -> Result<Response<ListTenantsResponse>, Status> {
        admin_call!(self, request, "ListTenants", list_tenants_as)
    }

    async fn list_api_keys(
        &self,
        request: Request<ListApiKeysRequest>,
    ) -> Result<Response<ListApiKeysResponse>, Status> {
        admin_call!(self, request, "ListApiKeys", list_api_keys_as)
    }

    async fn revoke_api_key(
        &self,
        request: Request<RevokeApiKeyRequest>,
    ) -> Result<Response<RevokeApiKeyResponse>, Status> {
        admin_call!(self, request, "RevokeApiKey", revoke_api_key_as)
    }

    async fn set_privacy_policy(
        &self,
        request: Request<SetPrivacyPolicyRequest>,
    ) -> Result<Response<SetPrivacyPolicyResponse>, Status> {
        admin_call!(self, request, "SetPrivacyPolicy", set_privacy_policy_as)
    }

    async fn get_privacy_policy(
        &self,
        request: Request<GetPrivacyPolicyRequest>,
    ) -> Result<Response<GetPrivacyPolicyResponse>, Status> {
        admin_call!(self, request, "GetPrivacyPolicy", get_privacy_policy_as)
    }

    async fn create_tenant(
        &self,
        request: Request<CreateTenantRequest>,
    ) -> Result<Response<CreateTenantResponse>, Status> {
        let caller = self
            .auth
            .authenticate_call(
                request.metadata(),
                Peer::of(&request),
                "/veil.gateway.v1.AdminService/CreateTenant",
            )
            .await?;
        caller.require_any(&[Role::PlatformAdmin])?;
        let request = request.into_inner();
        validate_name("name", &request.name)?;
        validate_slug(&request.slug)?;
        let locale = if request.default_locale.is_empty() {
            "en".to_string()
        } else {
            request.default_locale.clone()
        };
        let mut tx = self.pool.begin().await.map_err(ServiceError::from)?;
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
        let context = EventContext {
            tenant: Some(tenant),
            actor: Some(actor(&caller)),
            ..Default::default()
        };
        emit(
            &mut *tx,
            &self.events,
            &context,
            Payload::GatewayTenantCreated(GatewayTenantCreated {
                tenant_id: tenant.to_string(),
                slug: row.slug.clone(),
                default_jurisdiction: row.default_jurisdiction,
            }),
        )
        .await
        .map_err(ServiceError::internal)?;
        let admin_key = if request.create_admin_key {
            Some(
                create_key(
                    &mut tx,
                    &self.events,
                    &caller,
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
        Ok(Response::new(CreateTenantResponse {
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
        }))
    }

    async fn create_api_key(
        &self,
        request: Request<CreateApiKeyRequest>,
    ) -> Result<Response<CreateApiKeyResponse>, Status> {
        let caller = self
            .auth
            .authenticate_call(
                request.metadata(),
                Peer::of(&request),
                "/veil.gateway.v1.AdminService/CreateApiKey",
            )
            .await?;
        caller.require_any(&[Role::Admin])?;
        let request = request.into_inner();
        let tenant = if request.tenant_id.is_empty() {
            caller.tenant()?
        } else {
            let named: TenantId = request
                .tenant_id
                .parse()
                .map_err(|_| ServiceError::invalid("tenant_id", "must be a UUID"))?;
            // Only platform administrators may name another tenant.
            if caller.tenant.is_some_and(|own| own != named) {
                return Err(ServiceError::NotFound(format!("tenant {named}")).into());
            }
            named
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
        let mut tx = self.pool.begin().await.map_err(ServiceError::from)?;
        if !store::tenant_exists(&mut *tx, tenant.as_uuid())
            .await
            .map_err(ServiceError::from)?
        {
            return Err(ServiceError::NotFound(format!("tenant {tenant}")).into());
        }
        let created = create_key(
            &mut tx,
            &self.events,
            &caller,
            tenant,
            &request.name,
            &roles,
            expires_at,
        )
        .await?;
        tx.commit().await.map_err(ServiceError::from)?;
        self.relay.notify();
        Ok(Response::new(CreateApiKeyResponse {
            created: Some(created),
        }))
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
    let context = EventContext {
        tenant: Some(tenant),
        actor: Some(actor(caller)),
        ..Default::default()
    };
    emit(
        &mut **tx,
        events,
        &context,
        Payload::GatewayApiKeyCreated(GatewayApiKeyCreated {
            key_id: key.key_id.clone(),
            key_prefix: prefix.clone(),
            roles: proto_roles.clone(),
            expires_at: expires_at.map(timestamp),
        }),
    )
    .await
    .map_err(ServiceError::internal)?;
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
