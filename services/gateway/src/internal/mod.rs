//! `veil.gateway.v1.GatewayInternalService`: what the retention service needs from the
//! gateway's own data (redacted transcripts, pseudonym maps, restriction marks).
//!
//! Served behind the internal-token interceptor and callable by the retention service's
//! principal only; the proxy never routes it. Tenant and principal come from the token.

mod export;
mod purge;
mod rectify;

use tonic::{Request, Response, Status};
use veil_core::app::Foundation;
use veil_core::auth::Principal;
use veil_core::error::ServiceError;
use veil_core::events::{EventsConfig, RelayHandle};
use veil_core::subjects::{SubjectKeys, validate_subject_id};
use veil_core::types::{Role, SubjectRef, TenantId};
use veil_proto::common::v1::{SubjectSelector, subject_selector::Subject};
use veil_proto::gateway::v1::gateway_internal_service_server::GatewayInternalService;
use veil_proto::gateway::v1::{
    EraseSubjectRequest, EraseSubjectResponse, ExportSubjectRequest, PurgeRequest, PurgeResponse,
    RectifySubjectRequest, RectifySubjectResponse, RestrictSubjectRequest, RestrictSubjectResponse,
};

use crate::clients::Clients;
use crate::{erasure, restriction};

/// The principal id the retention service calls with (its service name).
pub const RETENTION_PRINCIPAL: &str = "retention";

/// Implementation of the internal service.
#[derive(Clone)]
pub struct InternalApi {
    pool: sqlx::PgPool,
    events: EventsConfig,
    relay: RelayHandle,
    subjects: SubjectKeys,
    clients: Clients,
}

impl InternalApi {
    pub fn new(foundation: &Foundation, subjects: SubjectKeys, clients: Clients) -> Self {
        Self {
            pool: foundation.pool.clone(),
            events: foundation.events.clone(),
            relay: foundation.relay.clone(),
            subjects,
            clients,
        }
    }
}

/// The retention service acting in one tenant; anyone else is refused.
struct Caller {
    principal: Principal,
    tenant: TenantId,
}

/// UNAUTHENTICATED without a valid internal token (the interceptor put no principal),
/// PERMISSION_DENIED for any principal but retention's service principal in a tenant.
fn retention_caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    let principal = Principal::from_request(request)?;
    if principal.principal_id.as_str() != RETENTION_PRINCIPAL || !principal.has_role(Role::Service)
    {
        return Err(Status::permission_denied(
            "only the retention service may call the gateway's internal API",
        ));
    }
    let tenant = principal.tenant()?;
    Ok(Caller {
        principal: principal.clone(),
        tenant,
    })
}

/// The subject ref a selector names: the HMAC of a subject id, or a given ref.
fn subject_ref(
    subjects: &SubjectKeys,
    tenant: &TenantId,
    selector: Option<&SubjectSelector>,
) -> Result<SubjectRef, ServiceError> {
    match selector.and_then(|s| s.subject.as_ref()) {
        Some(Subject::SubjectId(id)) => {
            validate_subject_id("subject.subject_id", id)?;
            Ok(subjects.subject_ref(tenant, id))
        }
        Some(Subject::SubjectRef(reference)) => reference.parse().map_err(|_| {
            ServiceError::invalid("subject.subject_ref", "must be 64 lowercase hex characters")
        }),
        None => Err(ServiceError::invalid("subject", "is required")),
    }
}

/// An id carried into events and logs: bounded and plain.
fn validate_id(field: &str, id: &str, required: bool) -> Result<(), ServiceError> {
    if id.is_empty() {
        return if required {
            Err(ServiceError::invalid(field, "is required"))
        } else {
            Ok(())
        };
    }
    veil_core::validate::validate_plain_id(field, id)
}

#[tonic::async_trait]
impl GatewayInternalService for InternalApi {
    async fn purge(
        &self,
        request: Request<PurgeRequest>,
    ) -> Result<Response<PurgeResponse>, Status> {
        let caller = retention_caller(&request)?;
        let outcome = purge::purge(&self.pool, caller.tenant, request.into_inner()).await?;
        Ok(Response::new(PurgeResponse {
            outcome: Some(outcome),
        }))
    }

    async fn erase_subject(
        &self,
        request: Request<EraseSubjectRequest>,
    ) -> Result<Response<EraseSubjectResponse>, Status> {
        let caller = retention_caller(&request)?;
        let request = request.into_inner();
        let subject = subject_ref(&self.subjects, &caller.tenant, request.subject.as_ref())?;
        validate_id("request_id", &request.request_id, false)?;
        let mut tx = veil_core::db::begin(&self.pool)
            .await
            .map_err(ServiceError::from)?;
        let outcome = erasure::erase_and_report(
            &mut tx,
            &self.events,
            caller.tenant,
            &subject,
            &request.request_id,
        )
        .await
        .map_err(ServiceError::internal)?;
        tx.commit().await.map_err(ServiceError::from)?;
        self.relay.notify();
        Ok(Response::new(EraseSubjectResponse {
            outcome: Some(outcome),
        }))
    }

    async fn export_subject(
        &self,
        request: Request<ExportSubjectRequest>,
    ) -> Result<Response<export::ExportStream>, Status> {
        let caller = retention_caller(&request)?;
        let request = request.into_inner();
        let subject = subject_ref(&self.subjects, &caller.tenant, request.subject.as_ref())?;
        validate_id("request_id", &request.request_id, false)?;
        let export = export::Export {
            pool: self.pool.clone(),
            clients: self.clients.clone(),
            // Vault reveals are made as retention's principal, so the access log names
            // the data-subject request's service, not a bot.
            service: caller.principal,
            tenant: caller.tenant,
            subject,
        };
        Ok(Response::new(export.spawn()))
    }

    async fn restrict_subject(
        &self,
        request: Request<RestrictSubjectRequest>,
    ) -> Result<Response<RestrictSubjectResponse>, Status> {
        let caller = retention_caller(&request)?;
        let request = request.into_inner();
        let subject = subject_ref(&self.subjects, &caller.tenant, request.subject.as_ref())?;
        validate_id("request_id", &request.request_id, false)?;
        let was_restricted = restriction::set(
            &self.pool,
            caller.tenant.as_uuid(),
            subject.as_str(),
            &request.request_id,
            request.restricted,
        )
        .await?;
        tracing::info!(
            request_id = %request.request_id,
            restricted = request.restricted,
            was_restricted,
            "subject restriction set"
        );
        Ok(Response::new(RestrictSubjectResponse { was_restricted }))
    }

    async fn rectify_subject(
        &self,
        request: Request<RectifySubjectRequest>,
    ) -> Result<Response<RectifySubjectResponse>, Status> {
        let caller = retention_caller(&request)?;
        let request = request.into_inner();
        let subject = subject_ref(&self.subjects, &caller.tenant, request.subject.as_ref())?;
        validate_id("request_id", &request.request_id, false)?;
        let replacements = rectify::validate(&request.replacements)?;
        let entries_updated = rectify::repoint(
            &self.pool,
            caller.tenant.as_uuid(),
            subject.as_str(),
            &replacements,
        )
        .await?;
        Ok(Response::new(RectifySubjectResponse { entries_updated }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_plain_and_bounded() {
        assert!(validate_id("request_id", "", false).is_ok());
        assert!(validate_id("request_id", "", true).is_err());
        assert!(validate_id("request_id", "0190c1b2-aaaa-7bbb:x_y.z", true).is_ok());
        assert!(validate_id("request_id", "anna@example.org", true).is_err());
        assert!(validate_id("request_id", &"a".repeat(129), true).is_err());
    }
}
