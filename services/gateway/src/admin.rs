//! `veil.gateway.v1.AdminService`: tenants, API keys and privacy policies. Every call
//! acts on the caller's own tenant unless a platform administrator names one.

mod create;
mod keys;
mod policy;
mod rows;
mod scope;
mod tenants;

use std::sync::Arc;

use tonic::{Request, Response, Status};
use veil_core::app::Foundation;
use veil_core::convert::role_to_proto;
use veil_core::emit::{EventContext, emit};
use veil_core::error::ServiceError;
use veil_core::events::{EventsConfig, RelayHandle};
use veil_core::types::TenantId;
use veil_proto::common::v1::{Actor, ActorKind};
use veil_proto::events::v1::AuthFailureReason;
use veil_proto::events::v1::event::Payload;
use veil_proto::gateway::v1::admin_service_server::AdminService;
use veil_proto::gateway::v1::{
    CreateApiKeyRequest, CreateApiKeyResponse, CreateTenantRequest, CreateTenantResponse,
    GetPrivacyPolicyRequest, GetPrivacyPolicyResponse, GetTenantRequest, GetTenantResponse,
    ListApiKeysRequest, ListApiKeysResponse, ListTenantsRequest, ListTenantsResponse,
    RevokeApiKeyRequest, RevokeApiKeyResponse, SetPrivacyPolicyRequest, SetPrivacyPolicyResponse,
};

use crate::apikeys::{Authenticator, Caller};
use crate::limits::RateLimiter;
use crate::pipeline::PolicyCache;

/// Implementation of the admin API.
pub struct AdminApi {
    pool: sqlx::PgPool,
    events: EventsConfig,
    relay: RelayHandle,
    auth: Arc<Authenticator>,
    limiter: Arc<RateLimiter>,
    /// This replica's compiled policies: a change stored here applies to its very next
    /// message (other replicas learn of it from `gateway.policy_changed`).
    policies: Arc<PolicyCache>,
}

/// Authenticates the caller of AdminService method `$method`, takes a rate-limit token,
/// runs `self.<handler>(&caller, message)` and records a refusal for lack of a role (for
/// audit's abuse rules, like the pipeline and the proxy do).
macro_rules! admin_call {
    ($self:ident, $request:ident, $method:literal, $handler:ident) => {{
        let method = concat!("/veil.gateway.v1.AdminService/", $method);
        let peer = $self.auth.proxies().peer_of(&$request);
        let caller = $self
            .auth
            .authenticate_call($request.metadata(), peer, method)
            .await?;
        $self
            .limiter
            .admit(&$self.auth, &caller, peer, method)
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
    pub fn new(
        foundation: &Foundation,
        auth: Arc<Authenticator>,
        limiter: Arc<RateLimiter>,
        policies: Arc<PolicyCache>,
    ) -> Self {
        Self {
            pool: foundation.pool.clone(),
            events: foundation.events.clone(),
            relay: foundation.relay.clone(),
            auth,
            limiter,
            policies,
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

/// Writes `payload` as `caller`'s event about `tenant` in the transaction of the change
/// it records.
async fn emit_change(
    db: &mut sqlx::PgConnection,
    events: &EventsConfig,
    caller: &Caller,
    tenant: TenantId,
    payload: Payload,
) -> Result<(), ServiceError> {
    let context = EventContext {
        tenant: Some(tenant),
        actor: Some(actor(caller)),
        ..Default::default()
    };
    emit(db, events, &context, payload)
        .await
        .map_err(ServiceError::internal)?;
    Ok(())
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
        admin_call!(self, request, "CreateTenant", create_tenant_as)
    }

    async fn create_api_key(
        &self,
        request: Request<CreateApiKeyRequest>,
    ) -> Result<Response<CreateApiKeyResponse>, Status> {
        admin_call!(self, request, "CreateApiKey", create_api_key_as)
    }
}
