//! gRPC edge of the consent service: validates requests into domain values and maps
//! errors through `ServiceError`.

use tonic::{Request, Response, Status};
use veil_core::app::Foundation;
use veil_core::auth::Principal;
use veil_core::error::{ServiceError, ServiceResult};
use veil_core::subjects::{SubjectKeys, validate_subject_id};
use veil_core::types::{Role, SubjectRef, TenantId};
use veil_proto::common::v1::subject_selector::Subject;
use veil_proto::common::v1::{
    ConsentDecision, DecisionReason, LegalBasis, PurposeDecision, SubjectSelector,
};
use veil_proto::consent::v1::consent_service_server::ConsentService;
use veil_proto::consent::v1::{
    CheckConsentRequest, CheckConsentResponse, ConsentState, Purpose, UpsertPurposeRequest,
    UpsertPurposeResponse,
};

use crate::store::{self, PurposeRow};

/// Largest number of purposes in one check.
const MAX_PURPOSES: usize = 64;

/// Implementation of `veil.consent.v1.ConsentService`.
pub struct ConsentApi {
    pool: sqlx::PgPool,
    subjects: SubjectKeys,
}

impl ConsentApi {
    pub fn new(foundation: &Foundation, subjects: SubjectKeys) -> Self {
        Self {
            pool: foundation.pool.clone(),
            subjects,
        }
    }

    fn subject_ref(
        &self,
        tenant: &TenantId,
        selector: Option<&SubjectSelector>,
    ) -> ServiceResult<SubjectRef> {
        match selector.and_then(|s| s.subject.as_ref()) {
            Some(Subject::SubjectId(id)) => {
                validate_subject_id("subject.subject_id", id)?;
                Ok(self.subjects.subject_ref(tenant, id))
            }
            Some(Subject::SubjectRef(reference)) => reference
                .parse()
                .map_err(|_| ServiceError::invalid("subject.subject_ref", "must be 64 hex chars")),
            None => Err(ServiceError::invalid("subject", "is required")),
        }
    }
}

fn caller(request: &Request<impl Sized>, roles: &[Role]) -> Result<TenantId, Status> {
    let principal = Principal::from_request(request)?;
    principal.require_any(roles)?;
    principal.tenant()
}

fn validate_purpose_key(field: &str, key: &str) -> ServiceResult<()> {
    let ok = !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            field,
            "must be 1 to 64 characters of [a-z0-9_]",
        ))
    }
}

#[tonic::async_trait]
impl ConsentService for ConsentApi {
    async fn upsert_purpose(
        &self,
        request: Request<UpsertPurposeRequest>,
    ) -> Result<Response<UpsertPurposeResponse>, Status> {
        let tenant = caller(&request, &[Role::Admin, Role::PrivacyOfficer])?;
        let purpose = request
            .into_inner()
            .purpose
            .ok_or_else(|| ServiceError::invalid("purpose", "is required"))?;
        validate_purpose_key("purpose.key", &purpose.key)?;
        if purpose.name.trim().is_empty() {
            return Err(ServiceError::invalid("purpose.name", "must not be empty").into());
        }
        let basis = LegalBasis::try_from(purpose.legal_basis)
            .ok()
            .filter(|b| *b != LegalBasis::Unspecified)
            .ok_or_else(|| ServiceError::invalid("purpose.legal_basis", "is required"))?;
        let row = PurposeRow {
            key: purpose.key,
            name: purpose.name,
            description: purpose.description,
            legal_basis: basis as i32,
            // Consent is required whenever consent is the legal basis.
            consent_required: purpose.consent_required || basis == LegalBasis::Consent,
            version: 0,
        };
        let (stored, created) = store::upsert_purpose(&self.pool, tenant.as_uuid(), &row)
            .await
            .map_err(ServiceError::from)?;
        Ok(Response::new(UpsertPurposeResponse {
            purpose: Some(Purpose {
                key: stored.key,
                name: stored.name,
                description: stored.description,
                legal_basis: stored.legal_basis,
                consent_required: stored.consent_required,
                version: stored.version,
                ..Default::default()
            }),
            created,
        }))
    }

    async fn check_consent(
        &self,
        request: Request<CheckConsentRequest>,
    ) -> Result<Response<CheckConsentResponse>, Status> {
        let tenant = caller(&request, &[Role::Bot, Role::Service, Role::PrivacyOfficer])?;
        let request = request.into_inner();
        let subject_ref = self.subject_ref(&tenant, request.subject.as_ref())?;
        if request.purpose_keys.len() > MAX_PURPOSES {
            return Err(ServiceError::invalid(
                "purpose_keys",
                format!("at most {MAX_PURPOSES} purposes per check"),
            )
            .into());
        }
        for (i, key) in request.purpose_keys.iter().enumerate() {
            validate_purpose_key(&format!("purpose_keys[{i}]"), key)?;
        }
        let purposes = store::purposes_by_key(&self.pool, tenant.as_uuid(), &request.purpose_keys)
            .await
            .map_err(ServiceError::from)?;
        let states = store::latest_states(
            &self.pool,
            tenant.as_uuid(),
            subject_ref.as_str(),
            &request.purpose_keys,
        )
        .await
        .map_err(ServiceError::from)?;
        let mut decisions = Vec::with_capacity(request.purpose_keys.len());
        for key in &request.purpose_keys {
            let purpose = purposes
                .iter()
                .find(|p| &p.key == key)
                .ok_or_else(|| ServiceError::NotFound(format!("purpose {key}")))?;
            let latest = states.iter().find(|(k, _, _)| k == key);
            decisions.push(decide(purpose, latest.map(|(_, id, state)| (*id, *state))));
        }
        let now = time::OffsetDateTime::now_utc();
        Ok(Response::new(CheckConsentResponse {
            subject_ref: subject_ref.as_str().to_string(),
            decisions,
            evaluated_at: Some(prost_types::Timestamp {
                seconds: now.unix_timestamp(),
                nanos: 0,
            }),
        }))
    }
}

/// Decides one purpose from its definition and the subject's latest record.
fn decide(purpose: &PurposeRow, latest: Option<(uuid::Uuid, i32)>) -> PurposeDecision {
    let mut decision = PurposeDecision {
        purpose_key: purpose.key.clone(),
        legal_basis: purpose.legal_basis,
        ..Default::default()
    };
    if !purpose.consent_required {
        decision.decision = ConsentDecision::Allowed as i32;
        decision.reason = DecisionReason::OtherLegalBasis as i32;
        return decision;
    }
    let (allowed, reason) = match latest.map(|(id, state)| (id, ConsentState::try_from(state))) {
        Some((id, Ok(ConsentState::Granted))) => {
            decision.record_id = id.to_string();
            (true, DecisionReason::Granted)
        }
        Some((id, Ok(state))) => {
            decision.record_id = id.to_string();
            let reason = match state {
                ConsentState::Withdrawn => DecisionReason::Withdrawn,
                ConsentState::Expired => DecisionReason::Expired,
                _ => DecisionReason::Denied,
            };
            (false, reason)
        }
        // Without a record, consent-based purposes are opt-in (the EU default).
        _ => (false, DecisionReason::NoRecordOptIn),
    };
    decision.decision = if allowed {
        ConsentDecision::Allowed
    } else {
        ConsentDecision::Denied
    } as i32;
    decision.reason = reason as i32;
    decision
}

#[cfg(test)]
mod tests {
    use super::*;

    fn purpose(consent_required: bool) -> PurposeRow {
        PurposeRow {
            key: "support".into(),
            name: "Support".into(),
            description: String::new(),
            legal_basis: LegalBasis::Consent as i32,
            consent_required,
            version: 1,
        }
    }

    #[test]
    fn purposes_without_consent_requirement_are_allowed() {
        let d = decide(&purpose(false), None);
        assert_eq!(d.decision, ConsentDecision::Allowed as i32);
        assert_eq!(d.reason, DecisionReason::OtherLegalBasis as i32);
    }

    #[test]
    fn no_record_means_opt_in_denied() {
        let d = decide(&purpose(true), None);
        assert_eq!(d.decision, ConsentDecision::Denied as i32);
        assert_eq!(d.reason, DecisionReason::NoRecordOptIn as i32);
    }

    #[test]
    fn latest_record_decides() {
        let id = uuid::Uuid::now_v7();
        let granted = decide(&purpose(true), Some((id, ConsentState::Granted as i32)));
        assert_eq!(granted.decision, ConsentDecision::Allowed as i32);
        assert_eq!(granted.record_id, id.to_string());
        let withdrawn = decide(&purpose(true), Some((id, ConsentState::Withdrawn as i32)));
        assert_eq!(withdrawn.decision, ConsentDecision::Denied as i32);
        assert_eq!(withdrawn.reason, DecisionReason::Withdrawn as i32);
    }
}
