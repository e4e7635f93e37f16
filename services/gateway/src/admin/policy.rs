//! SetPrivacyPolicy and GetPrivacyPolicy.

use tonic::Status;
use veil_core::error::ServiceError;
use veil_core::types::{Role, TenantId};
use veil_proto::events::v1::GatewayPolicyChanged;
use veil_proto::events::v1::event::Payload;
use veil_proto::gateway::v1::{
    GetPrivacyPolicyRequest, GetPrivacyPolicyResponse, SetPrivacyPolicyRequest,
    SetPrivacyPolicyResponse,
};

use super::{AdminApi, actor, emit_change, scope};
use crate::apikeys::Caller;
use crate::policy_store::{self, SetOutcome};
use crate::store;

impl AdminApi {
    async fn existing_tenant(&self, caller: &Caller, requested: &str) -> Result<TenantId, Status> {
        let tenant = scope::target_tenant(caller, requested)?;
        if !store::tenant_exists(&self.pool, tenant.as_uuid())
            .await
            .map_err(ServiceError::from)?
        {
            return Err(ServiceError::NotFound(format!("tenant {tenant}")).into());
        }
        Ok(tenant)
    }

    pub(super) async fn set_privacy_policy_as(
        &self,
        caller: &Caller,
        request: SetPrivacyPolicyRequest,
    ) -> Result<SetPrivacyPolicyResponse, Status> {
        caller.require_any(&[Role::Admin, Role::PrivacyOfficer])?;
        let tenant = self.existing_tenant(caller, &request.tenant_id).await?;
        let policy = request
            .policy
            .ok_or_else(|| ServiceError::invalid("policy", "is required"))?;
        policy_store::validate(&policy)?;
        if request.expected_version < 0 {
            return Err(ServiceError::invalid("expected_version", "must not be negative").into());
        }
        let actor = actor(caller);
        let mut tx = veil_core::db::begin(&self.pool)
            .await
            .map_err(ServiceError::from)?;
        let (previous, current) = match policy_store::store_next(
            &mut tx,
            tenant,
            &policy,
            request.expected_version,
            &actor,
        )
        .await?
        {
            SetOutcome::Stored { previous, current } => (previous, current),
            SetOutcome::VersionMismatch { current } => {
                return Err(Status::aborted(format!(
                    "policy version {current} is current, not {}",
                    request.expected_version
                )));
            }
        };
        emit_change(
            &mut tx,
            &self.events,
            caller,
            tenant,
            Payload::GatewayPolicyChanged(GatewayPolicyChanged {
                policy_version: current.version,
                previous_version: previous.version,
                changed_fields: policy_store::changed_fields(&previous.proto, &current.proto),
            }),
        )
        .await?;
        tx.commit().await.map_err(ServiceError::from)?;
        self.policies.invalidate(tenant);
        self.relay.notify();
        Ok(SetPrivacyPolicyResponse {
            policy: Some(current.proto.clone()),
        })
    }

    pub(super) async fn get_privacy_policy_as(
        &self,
        caller: &Caller,
        request: GetPrivacyPolicyRequest,
    ) -> Result<GetPrivacyPolicyResponse, Status> {
        caller.require_any(&[Role::Admin, Role::PrivacyOfficer, Role::Auditor])?;
        if request.version < 0 {
            return Err(ServiceError::invalid("version", "must not be negative").into());
        }
        let tenant = self.existing_tenant(caller, &request.tenant_id).await?;
        let stored = policy_store::policy_version(&self.pool, tenant, request.version)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("policy version {}", request.version)))?;
        Ok(GetPrivacyPolicyResponse {
            policy: Some(stored.proto),
        })
    }
}
